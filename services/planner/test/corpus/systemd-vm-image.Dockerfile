FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends systemd-sysv openssh-server iproute2 nginx \
 && rm -rf /var/lib/apt/lists/*
RUN systemctl enable nginx ssh
COPY --chmod=0644 site.conf /etc/nginx/sites-enabled/default
COPY --chmod=0755 --chown=root:root scripts/ /usr/local/sbin/
EXPOSE 22 80 443
VOLUME ["/var/log/nginx", "/var/www"]
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN nginx -t 2>&1 | tee /var/log/nginx-check.log
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
