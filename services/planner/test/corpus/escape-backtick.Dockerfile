# escape=`
FROM debian:12
ENV TOOLS=C:\tools `
    MSG="a `$literal"
RUN echo building `
    && echo $TOOLS
WORKDIR /work
COPY config.json `
     settings.json `
     ./
