{
  "targets": [
    {
      "target_name": "keepalive_native",
      "sources": ["native/keepalive_native.c", "native/check_engine.c", "native/relay_engine.c", "native/precise_timer.c", "native/vrrp_sender.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-ldl"]
    }
  ]
}
