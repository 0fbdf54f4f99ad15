// Stable Diffusion 1.x on ONNX Runtime: the four models of a diffusers/optimum ONNX export,
// their signatures read from the sessions and adapted to (input_ids int32|int64; timestep
// float32|int64|int32, rank 0|1; vae_encoder latent_sample | latent_parameters), text and image
// encoding, decoding, and the fused img2img loop (sd_sampler.h) on an IoBinding U-Net.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "brainlatent/checked_file.h"
#include "brainlatent/ort_runtime.h"
#include "brainlatent/philox.h"
#include "brainlatent/sd_sampler.h"

namespace brainlatent {

struct SdTensorInfo {
  std::string name;
  std::string dtype;                 // "float32", "int64", ...
  std::vector<std::int64_t> shape;   // -1 where symbolic
  std::vector<std::string> dims;     // symbolic names, "" where fixed
};

struct SdModelInfo {
  std::string component;  // text_encoder | unet | vae_encoder | vae_decoder
  std::string path;
  std::vector<SdTensorInfo> inputs, outputs;
};

struct SdSummary {
  std::vector<SdModelInfo> models;
  std::string provider;             // "cpu", "cuda (built-in)", "cuda (plugin: <library>)", or the provider's name
  std::string input_ids_dtype;      // int32 | int64 ("" without a text encoder)
  std::int64_t text_seq = 77;       // sequence length of input_ids (-1 when symbolic)
  std::string timestep_dtype;       // float32 | int64 | int32
  int timestep_rank = 1;
  std::string vae_encoder_output;   // latent_sample | latent_parameters
  std::int64_t cond_dim = -1;       // encoder_hidden_states width (-1 when symbolic)
  std::int64_t latent_channels = 4;
};

// A component's model given as its serialized bytes instead of read from <dir>/<component>/model.onnx: the graph
// with its external data locations naming files in `external_data_folder` (ONNX Runtime 1.30 refuses external data
// behind a link that leaves the model file's real folder, as a download's links into a cache's blobs/ can;
// ts/sd/modelSource.ts rewrites them to the files the links lead to). `data` is only read during the load.
struct SdModelBytes {
  const void* data = nullptr;
  std::size_t size = 0;
  std::string external_data_folder;
  // Under a service's model roots: the external data files as checked (checked_file.h), every location the graph
  // names; the engine opens and maps them and ONNX Runtime reads no path (external_data_folder is then unused).
  std::vector<CheckedFile> files;
  bool checked = false;
};

struct SdLoadOptions {
  std::string dir;
  std::string ort_library;            // "" = BRAINLATENT_ORT_LIB
  OrtSessionConfig session;
  std::vector<std::string> components;  // empty = all four
  std::map<std::string, SdModelBytes> from_memory;  // by component; the others are loaded from their path
};

enum class LatentMode { Auto, Mean, Sample };

// The images encode_images encodes: model input [B, 3, H, W] in [-1, 1] read in place, or uint8 RGB [B, H, W, 3]
// converted one chunk at a time on the encoding thread (the addon's way: a float copy of the whole batch is 4× the
// uint8 input, and converting it on the JS thread blocked the event loop).
struct SdImages {
  SdImages(const float* model_input) : model(model_input) {}
  SdImages(const std::uint8_t* rgb8) : rgb(rgb8) {}
  const float* model = nullptr;
  const std::uint8_t* rgb = nullptr;
};

class SdPipeline {
 public:
  static std::unique_ptr<SdPipeline> load(const SdLoadOptions& options);
  virtual ~SdPipeline() = default;
  virtual const SdSummary& summary() const = 0;
  virtual bool has(const std::string& component) const = 0;

  // ids [B, seq] -> last_hidden_state [B, seq, dim]. Throws Cancelled when *cancel is set before the run; `relay`,
  // fired with the flag, interrupts the run in flight (ONNX Runtime's terminate flag), which is then Cancelled too.
  virtual std::vector<float> encode_text(const std::int64_t* ids, std::int64_t batch, std::int64_t seq,
                                         std::int64_t& dim, const std::atomic<bool>* cancel = nullptr,
                                         CancelRelay* relay = nullptr) = 0;
  // images (see SdImages) -> scaled latents [B, C, H/8, W/8] (scaling · mean or sample).
  // Throws Cancelled when *cancel is set, checked before each chunk of images; `relay`, fired with
  // the flag, interrupts the chunk's run in flight (ONNX Runtime's terminate flag), which is then
  // Cancelled too.
  virtual std::vector<float> encode_images(SdImages images, std::int64_t batch, std::int64_t height,
                                           std::int64_t width, LatentMode mode, const NoiseKey* keys, float scaling,
                                           std::int64_t chunk, std::int64_t& channels, std::int64_t& h,
                                           std::int64_t& w, const std::atomic<bool>* cancel = nullptr,
                                           CancelRelay* relay = nullptr) = 0;
  // scaled latents [B, C, h, w] -> images [B, 3, H, W] in [0, 1]. Throws Cancelled when *cancel is set,
  // checked before each chunk of latents; `relay` as for encode_images.
  virtual std::vector<float> decode(const float* latents, std::int64_t batch, std::int64_t channels, std::int64_t h,
                                    std::int64_t w, float scaling, std::int64_t chunk, std::int64_t& height,
                                    std::int64_t& width, const std::atomic<bool>* cancel = nullptr,
                                    CancelRelay* relay = nullptr) = 0;
  // Checks the job against the U-Net's signature, then runs the fused loop.
  virtual Img2ImgStats img2img(const Img2ImgJob& job) = 0;
};

// images [B, H, W, 3] uint8 -> [B, 3, H, W] float in [-1, 1]
void rgb8_to_model_input(const std::uint8_t* rgb, std::int64_t batch, std::int64_t height, std::int64_t width,
                         float* out);
// [B, 3, H, W] float in [0, 1] -> [B, H, W, 3] uint8 (round(255·x))
void model_output_to_rgb8(const float* img, std::int64_t batch, std::int64_t height, std::int64_t width,
                          std::uint8_t* out);

}  // namespace brainlatent
