/*
 * precise_timer: a timerfd (CLOCK_MONOTONIC, nanosecond deadline) polled by Node's own loop.
 *
 * Node's timers are armed in whole milliseconds from the loop's cached time and libuv waits in
 * epoll with a millisecond timeout, so a setTimeout fires up to ~1 ms after (or even before) its
 * due time; keepalive-ts covered the last 1.5 ms before every VRRP deadline with setImmediate
 * turns, i.e. busy polling. A timerfd wakes the loop when the deadline passes, to the microsecond,
 * without spinning. One timer per user (the VRRP clock multiplexes all its deadlines onto one).
 *
 * JS API (registered by precise_timer_init):
 *   preciseTimerOpen(callback) -> handle     callback() runs on the loop when the timer expires
 *   preciseTimerArm(handle, delayMs)         (re)arms: fires delayMs (fractional) from now; 0 = at once
 *   preciseTimerDisarm(handle)
 *   preciseTimerClose(handle)                idempotent
 * An armed timer keeps the loop alive (like a Node timer); a disarmed or closed one does not.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "napi_callback.h"
#include "precise_timer.h"

typedef struct {
  napi_env env;
  int fd;
  uv_poll_t poll;
  bool poll_initialized;
  bool handle_closed;
  bool finalized;
  bool armed;
  napi_ref callback;
  napi_async_context async;
} ptimer_t;

static void pt_maybe_free(ptimer_t *t) {
  if (t->handle_closed && t->finalized) free(t);
}

static void pt_on_closed(uv_handle_t *h) {
  ptimer_t *t = h->data;
  t->handle_closed = true;
  pt_maybe_free(t);
}

static void pt_shutdown(ptimer_t *t) {
  if (t->fd < 0) return;
  if (t->poll_initialized) {
    uv_poll_stop(&t->poll);
    uv_close((uv_handle_t *)&t->poll, pt_on_closed);
  } else {
    t->handle_closed = true;
  }
  close(t->fd);
  t->fd = -1;
  if (t->callback) napi_delete_reference(t->env, t->callback);
  t->callback = NULL;
  if (t->async) napi_async_destroy(t->env, t->async);
  t->async = NULL;
}

static void pt_finalize(napi_env env, void *data, void *hint) {
  ptimer_t *t = data;
  pt_shutdown(t);
  t->finalized = true;
  pt_maybe_free(t);
}

static void pt_on_poll(uv_poll_t *h, int status, int events) {
  ptimer_t *t = h->data;
  if (t->fd < 0) return;
  uint64_t expirations;
  if (read(t->fd, &expirations, sizeof expirations) < 0 && errno == EAGAIN) return; /* re-armed meanwhile */
  t->armed = false;
  uv_unref((uv_handle_t *)&t->poll);
  napi_env env = t->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  invoke_js_callback(env, t->callback, t->async, 0, NULL);
  napi_close_handle_scope(env, scope);
}

static napi_value pt_throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

static ptimer_t *pt_arg(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "handle must come from preciseTimerOpen()");
    return NULL;
  }
  return data;
}

/* preciseTimerOpen(callback) */
static napi_value pt_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return pt_throw_errno(env, "timerfd_create", errno);
  ptimer_t *t = calloc(1, sizeof *t);
  if (!t) {
    close(fd);
    return pt_throw_errno(env, "timerfd", ENOMEM);
  }
  t->env = env;
  t->fd = fd;
  struct uv_loop_s *loop = NULL;
  napi_value name, ext;
  int uerr = 0;
  if (napi_create_reference(env, argv[0], 1, &t->callback) != napi_ok ||
      napi_create_string_utf8(env, "keepalive-ts:timer", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &t->async) != napi_ok || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    t->handle_closed = true;
    pt_shutdown(t);
    free(t);
    napi_throw_error(env, "ERR_NAPI", "timerfd: N-API setup failed");
    return NULL;
  }
  if ((uerr = uv_poll_init(loop, &t->poll, fd)) == 0) {
    t->poll_initialized = true;
    t->poll.data = t;
    uerr = uv_poll_start(&t->poll, UV_READABLE, pt_on_poll);
    uv_unref((uv_handle_t *)&t->poll);
  }
  if (uerr != 0 || napi_create_external(env, t, pt_finalize, NULL, &ext) != napi_ok) {
    if (!t->poll_initialized) t->handle_closed = true;
    pt_shutdown(t);
    t->finalized = true;
    pt_maybe_free(t);
    return pt_throw_errno(env, "uv_poll", uerr ? -uerr : EIO);
  }
  return ext;
}

/* preciseTimerArm(handle, delayMs) */
static napi_value pt_arm(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double ms;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return NULL;
  ptimer_t *t = pt_arg(env, argv[0]);
  if (!t) return NULL;
  if (napi_get_value_double(env, argv[1], &ms) != napi_ok || !(ms >= 0) || ms > 1e12) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "delayMs must be a number >= 0");
    return NULL;
  }
  if (t->fd < 0) return NULL;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t at = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec + (uint64_t)(ms * 1e6);
  if (at == 0) at = 1; /* it_value 0 would disarm */
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(at / 1000000000ull);
  its.it_value.tv_nsec = (long)(at % 1000000000ull);
  if (timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) return pt_throw_errno(env, "timerfd_settime", errno);
  if (!t->armed) {
    t->armed = true;
    uv_ref((uv_handle_t *)&t->poll);
  }
  return NULL;
}

/* preciseTimerDisarm(handle) */
static napi_value pt_disarm(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  ptimer_t *t = pt_arg(env, argv[0]);
  if (!t || t->fd < 0) return NULL;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  timerfd_settime(t->fd, 0, &its, NULL);
  if (t->armed) {
    t->armed = false;
    uv_unref((uv_handle_t *)&t->poll);
  }
  return NULL;
}

/* preciseTimerClose(handle) */
static napi_value pt_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  ptimer_t *t = pt_arg(env, argv[0]);
  if (t) pt_shutdown(t);
  return NULL;
}

napi_value precise_timer_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"preciseTimerOpen", NULL, pt_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"preciseTimerArm", NULL, pt_arm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"preciseTimerDisarm", NULL, pt_disarm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"preciseTimerClose", NULL, pt_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
