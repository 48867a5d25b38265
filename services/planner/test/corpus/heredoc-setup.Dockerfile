# syntax=docker/dockerfile:1.7
FROM debian:12
ARG APP_USER=svc
RUN <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends curl jq
rm -rf /var/lib/apt/lists/*
useradd --system --create-home ${APP_USER}
EOF
COPY <<EOF /etc/app/config.yaml
listen: 0.0.0.0:9000
user: ${APP_USER}
EOF
COPY <<'EOF' /usr/local/bin/entry.sh
#!/bin/sh
exec "$@"
EOF
RUN <<-PY python3
	import os
	print(os.getcwd())
	PY
RUN chmod +x /usr/local/bin/entry.sh
ENTRYPOINT ["/usr/local/bin/entry.sh"]
CMD ["app", "--config", "/etc/app/config.yaml"]
