FROM alpine:3.19 AS lint
RUN echo lint

FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /bin/app .

FROM build AS debug
RUN go install github.com/go-delve/delve/cmd/dlv@latest
CMD ["dlv", "exec", "/bin/app"]

FROM gcr.io/distroless/static-debian12:nonroot AS prod
COPY --from=build /bin/app /app
USER nonroot:nonroot
ENTRYPOINT ["/app"]
