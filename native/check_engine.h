/* The health-check I/O engine (check_engine.c): registers checkEngineCallback, checkStart and
 * checkAbort on the addon's exports. */
#ifndef KEEPALIVE_CHECK_ENGINE_H
#define KEEPALIVE_CHECK_ENGINE_H
#include <node_api.h>
napi_value check_engine_init(napi_env env, napi_value exports);
#endif
