FROM postgres:16
ENV POSTGRES_DB=app \
    POSTGRES_USER=app
COPY --chown=postgres:postgres initdb/*.sql /docker-entrypoint-initdb.d/
COPY --chmod=0755 healthcheck.sh /usr/local/bin/
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["healthcheck.sh"]
EXPOSE 5432
