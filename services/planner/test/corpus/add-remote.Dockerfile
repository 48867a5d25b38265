FROM alpine:3.19
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://github.com/tianon/gosu/releases/download/1.17/gosu-amd64 /usr/local/bin/gosu
ADD https://github.com/docker/buildx.git#v0.12.0 /src/buildx
ADD --chown=1000:1000 vendor.tar.gz /opt/vendor/
ADD files/ /srv/files/
RUN chmod +x /usr/local/bin/gosu
