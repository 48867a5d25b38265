ARG GRAFANA_VERSION="10.4.0"
FROM grafana/grafana:${GRAFANA_VERSION}
USER root
ARG GF_INSTALL_PLUGINS="grafana-clock-panel,grafana-simple-json-datasource"
RUN if [ -n "$GF_INSTALL_PLUGINS" ]; then \
      OLDIFS=$IFS; IFS=','; \
      for plugin in ${GF_INSTALL_PLUGINS}; do \
        IFS=$OLDIFS; grafana-cli --pluginsDir "$GF_PATHS_PLUGINS" plugins install ${plugin}; \
      done; \
    fi
USER grafana
