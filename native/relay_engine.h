/* The proxy's TCP byte path (relay_engine.c): registers relayEngine, relayListen, relayUnlisten,
 * relayConnect, relayDestroy, relayBytes, relayTimeouts and relayClose on the addon's exports. */
#ifndef KEEPALIVE_RELAY_ENGINE_H
#define KEEPALIVE_RELAY_ENGINE_H
#include <node_api.h>
#include <stdbool.h>
#include <sys/socket.h>
napi_value relay_engine_init(napi_env env, napi_value exports);
/* "10.0.0.1" / "fd00::1" and a port into a sockaddr; false when the text is no IP address. */
bool sockaddr_from_text(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len);
#endif
