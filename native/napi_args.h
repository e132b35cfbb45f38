/* Argument helpers for the addon's N-API functions (vrrp_sender.c, check_engine.c; the older files keep their own
 * copies for now): a number in range, a Buffer, an external handle, an IPv4 address string. Each
 * throws the JS error itself and returns false, so a caller just returns NULL. */
#ifndef KEEPALIVE_NAPI_ARGS_H
#define KEEPALIVE_NAPI_ARGS_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline bool napi_arg_count(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return false;
  }
  return true;
}

static inline bool napi_arg_number(napi_env env, napi_value v, double min, double max, const char *what, double *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || !(d >= min && d <= max)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return false;
  }
  *out = d;
  return true;
}

static inline bool napi_arg_int(napi_env env, napi_value v, int64_t min, int64_t max, const char *what, int64_t *out) {
  double d;
  if (!napi_arg_number(env, v, (double)min, (double)max, what, &d)) return false;
  if (d != (double)(int64_t)d) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static inline bool napi_arg_buffer(napi_env env, napi_value v, const char *what, void **data, size_t *len) {
  bool is_buf = false;
  if (napi_is_buffer(env, v, &is_buf) != napi_ok || !is_buf || napi_get_buffer_info(env, v, data, len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return false;
  }
  return true;
}

static inline bool napi_arg_external(napi_env env, napi_value v, const char *what, void **out) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return false;
  }
  *out = data;
  return true;
}

static inline bool napi_arg_ipv4(napi_env env, napi_value v, const char *what, struct in_addr *out) {
  char text[INET_ADDRSTRLEN + 1];
  size_t n;
  if (napi_get_value_string_utf8(env, v, text, sizeof text, &n) != napi_ok || inet_pton(AF_INET, text, out) != 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return false;
  }
  return true;
}
#endif
