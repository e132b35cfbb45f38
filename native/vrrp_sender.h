/* The VRRP timing executor (vrrp_sender.c): registers vrrpSenderOpen, vrrpSenderSchedule,
 * vrrpSenderCancel, vrrpSenderStats and vrrpSenderClose on the addon's exports. */
#ifndef KEEPALIVE_VRRP_SENDER_H
#define KEEPALIVE_VRRP_SENDER_H
#include <node_api.h>
napi_value vrrp_sender_init(napi_env env, napi_value exports);
#endif
