/* The proxy's TCP byte path (relay_engine.c): registers relayEngine, relayListen, relayUnlisten,
 * relayConnect, relayDestroy, relayBytes, relayTimeouts and relayClose on the addon's exports. */
#ifndef KEEPALIVE_RELAY_ENGINE_H
#define KEEPALIVE_RELAY_ENGINE_H
#include <node_api.h>
napi_value relay_engine_init(napi_env env, napi_value exports);
#endif
