// Module entry: each wrapped area registers its functions here. No algorithm lives in the addon.
#include <napi.h>

#include "addon_modules.h"

namespace brainlatent::addon {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  init_engine(env, exports);
  init_ridge(env, exports);
  init_banded(env, exports);
  init_sampler(env, exports);
  init_metrics(env, exports);
  init_onnx_model(env, exports);
  init_gunzip(env, exports);
  init_bench(env, exports);
  return exports;
}

}  // namespace brainlatent::addon

static Napi::Object InitBrainlatent(Napi::Env env, Napi::Object exports) { return brainlatent::addon::init(env, exports); }

NODE_API_MODULE(brainlatent, InitBrainlatent)
