/* Calling a JS callback held in a reference from native code (check_engine.c, relay_engine.c, the
 * raw IPv6 socket of keepalive_native.c): MakeCallback with the global object as receiver (an
 * undefined receiver would throw in ToObject); an exception the callback throws is fatal, as an
 * uncaught one from any other callback of the event loop. */
#ifndef KEEPALIVE_NAPI_CALLBACK_H
#define KEEPALIVE_NAPI_CALLBACK_H
#include <node_api.h>
#include <stdbool.h>

static inline void invoke_js_callback(napi_env env, napi_ref callback, napi_async_context async, size_t argc, napi_value *argv) {
  napi_value cb, recv;
  if (!callback || napi_get_reference_value(env, callback, &cb) != napi_ok || !cb || napi_get_global(env, &recv) != napi_ok) return;
  if (napi_make_callback(env, async, recv, cb, argc, argv, NULL) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
}
#endif
