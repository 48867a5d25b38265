FROM node:18-alpine
RUN apk add --no-cache libc6-compat
WORKDIR /app
COPY package.json yarn.lock* ./
RUN yarn --frozen-lockfile && yarn cache clean
COPY . .
ENV NEXT_TELEMETRY_DISABLED 1
RUN yarn build
EXPOSE 3000
ENV PORT 3000
CMD ["yarn", "start"]
