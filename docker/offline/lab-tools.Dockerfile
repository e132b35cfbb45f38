# Stand-in for the nginx and curl images of docker/compose.yaml where no registry is reachable:
# Debian's nginx and curl on a local Debian base (scripts/lib/debian-base.sh). Like the official
# nginx image, it renders /etc/nginx/templates/*.template with envsubst at start (only variables set
# in the environment are replaced, so nginx's own $variables survive) into /etc/nginx/conf.d/.
#
#   docker build --build-arg BASE_IMAGE=keepalive-ts-base:bookworm -f docker/offline/lab-tools.Dockerfile -t keepalive-ts-lab-tools docker/offline
#   KEEPALIVE_TS_NGINX_IMAGE=keepalive-ts-lab-tools KEEPALIVE_TS_CLIENT_IMAGE=keepalive-ts-lab-tools docker-compose -f docker/compose.yaml up -d
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light gettext-base curl \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
COPY nginx-entrypoint.sh /usr/local/bin/nginx-entrypoint.sh
RUN chmod 0755 /usr/local/bin/nginx-entrypoint.sh
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/nginx-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
