// One init function per wrapped area (addon_<area>.cpp), called from addon.cpp.
#pragma once
#include <napi.h>

namespace brainlatent::addon {
void init_engine(Napi::Env env, Napi::Object exports);
void init_bench(Napi::Env env, Napi::Object exports);
void init_ridge(Napi::Env env, Napi::Object exports);
void init_banded(Napi::Env env, Napi::Object exports);
void init_sampler(Napi::Env env, Napi::Object exports);
void init_metrics(Napi::Env env, Napi::Object exports);
void init_onnx_model(Napi::Env env, Napi::Object exports);
void init_gunzip(Napi::Env env, Napi::Object exports);
}  // namespace brainlatent::addon
