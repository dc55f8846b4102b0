# The otelcol-smtp container image: the static distribution binary, the CA
# bundle and a default configuration, nothing else (FROM scratch: no shell, no
# package manager, nothing to pull). Build it with `make image`, which stages
# the binary (built with CGO_ENABLED=0) and the host's CA bundle first and
# passes the version and licence labels.
#
# Runs read-only with every capability dropped:
#   docker run --read-only --cap-drop ALL --security-opt no-new-privileges \
#     -p 2525:2525 otelcol-smtp:dev
FROM scratch

ARG VERSION=dev
ARG SOURCE=https://github.com/smtpreceiver/smtpreceiver
ARG LICENSES=Apache-2.0
LABEL org.opencontainers.image.title="otelcol-smtp" \
      org.opencontainers.image.description="OpenTelemetry Collector distribution with the smtp receiver: SMTP in, log records out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}"

COPY dist/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY packaging/image/config.yaml /etc/otelcol-smtp/config.yaml
COPY bin/otelcol-smtp /otelcol-smtp

# 2525: SMTP (an unprivileged port, as the image runs without capabilities);
# 13133: health_check extension.
EXPOSE 2525 13133
USER 10001:10001
ENTRYPOINT ["/otelcol-smtp"]
CMD ["--config", "/etc/otelcol-smtp/config.yaml"]
