# syntax=docker/dockerfile:1
FROM node:20-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc.template ./
RUN --mount=type=secret,id=npm_token,env=NPM_TOKEN \
    --mount=type=ssh \
    npm ci
RUN --mount=type=secret,id=aws,target=/root/.aws/credentials,required=true \
    aws s3 cp s3://bucket/assets.tgz /tmp/assets.tgz

FROM gcr.io/distroless/nodejs20-debian12
COPY --from=deps /app /app
WORKDIR /app
CMD ["server.js"]
