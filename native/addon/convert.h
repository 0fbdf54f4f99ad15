// Typed accessors from JS values to plain C++ values (the addon's only parsing helpers), and
// the mapping of brainlatent::Error codes onto JS error classes.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "brainlatent/error.h"

namespace brainlatent::addon {

inline Napi::Value get(const Napi::Object& o, const char* key) { return o.Get(key); }

inline bool has(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined() && !o.Get(key).IsNull();
}

inline double attr_number(const Napi::Object& o, const char* key, double fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline bool attr_bool(const Napi::Object& o, const char* key, bool fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline std::string attr_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

template <typename TA>
TA attr_typed_array(const Napi::Object& o, const char* key, napi_typedarray_type type, const char* type_name) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(o.Env(), std::string("'") + key + "' must be a " + type_name);
  return v.As<TA>();
}

// A JS Error carrying the core's error code as `.code`.
inline Napi::Error to_js_error(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::Error err = (code == ErrorCode::InvalidArgument)
                        ? static_cast<Napi::Error>(Napi::RangeError::New(env, message))
                        : Napi::Error::New(env, message);
  err.Value().Set("code", Napi::String::New(env, error_code_name(code)));
  return err;
}

}  // namespace brainlatent::addon
