/* A timerfd-backed precise timer on Node's loop (precise_timer.c): registers preciseTimerOpen,
 * preciseTimerArm, preciseTimerDisarm and preciseTimerClose on the addon's exports. */
#ifndef KEEPALIVE_PRECISE_TIMER_H
#define KEEPALIVE_PRECISE_TIMER_H
#include <node_api.h>
napi_value precise_timer_init(napi_env env, napi_value exports);
#endif
