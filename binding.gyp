{
  # node-gyp build of the CPU-only addon, from the same source list as CMakeLists.txt
  # (native/sources.txt). Needs libopenblas-dev (or another BLAS/LAPACK as -lblas -llapack).
  "targets": [{
    "target_name": "brainlatent",
    "sources": [
      "<!@(node -e \"require('fs').readFileSync('native/sources.txt','utf8').split('\\n').forEach(l=>{const m=/^(core|addon):\\s*(\\S+)/.exec(l); if(m) console.log(m[2])})\")"
    ],
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "native/core/include",
      "native/third_party/onnxruntime/include",
      "native/third_party/isa-l/include"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fvisibility=hidden", "-fno-gnu-unique"],
    "libraries": ["-lopenblas", "-ldl", "-lpthread"]
  }]
}
