from debian:12 as base
maintainer Ops Team <ops@example.com>
env APP_ROOT /opt/app
run mkdir -p $APP_ROOT
workdir $APP_ROOT
copy . .
expose 8000/tcp 8001/udp
cmd ./start.sh
