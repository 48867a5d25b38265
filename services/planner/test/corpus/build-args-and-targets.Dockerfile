ARG BASE_IMAGE=debian
ARG BASE_TAG=12
FROM ${BASE_IMAGE}:${BASE_TAG} AS base
ARG BASE_TAG
RUN echo "base tag is ${BASE_TAG}"

FROM base AS test
COPY . /src
RUN make -C /src test

FROM base AS release
ARG VERSION
ARG COMMIT=unknown
LABEL version="${VERSION:-0.0.0}" commit=$COMMIT
COPY --from=test /src/out /opt/app
CMD ["/opt/app/run"]
