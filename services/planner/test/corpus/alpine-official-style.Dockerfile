FROM alpine:3.19

RUN set -eux; \
	addgroup -g 1000 -S app; \
	adduser -u 1000 -S -D -G app -h /home/app app

ENV LANG C.UTF-8
ARG TOOL_VERSION=2.4.1
ARG TOOL_SHA256=0000000000000000000000000000000000000000000000000000000000000000

RUN set -eux; \
	apk add --no-cache --virtual .fetch-deps curl tar; \
	curl -fsSL -o /tmp/tool.tgz "https://example.com/tool-${TOOL_VERSION}.tgz"; \
	echo "$TOOL_SHA256 */tmp/tool.tgz" | sha256sum -c -; \
	tar -xzf /tmp/tool.tgz -C /usr/local/bin; \
	rm /tmp/tool.tgz; \
	apk del --no-network .fetch-deps

USER app
WORKDIR /home/app
CMD ["tool", "serve"]
