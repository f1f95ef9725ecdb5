# his-pacs-ws in a container: `serve` on 0.0.0.0:8000, settings from the environment
# (README, Configuration), the data dir (key file, embedded database) on a volume.
#   docker build -t his-pacs-ws .
#   docker run -d --env-file /etc/his-pacs-ws/his-pacs-ws.env -e HIS_PACS_HOST=0.0.0.0 \
#       -v his-pacs-data:/var/lib/his-pacs-ws -p 127.0.0.1:8000:8000 his-pacs-ws
# Admin commands run in the same image: docker run --rm -i --env-file ... his-pacs-ws systems list
# Production: an external PostgreSQL (HIS_PACS_DATABASE_URL) and HIS_PACS_SECRET_KEY.
FROM python:3.11-slim-bookworm

RUN useradd --system --home-dir /var/lib/his-pacs-ws --create-home --shell /usr/sbin/nologin hisws
WORKDIR /opt/his-pacs-ws/src
COPY setup.cfg setup.py README.md LICENSE constraints.txt ./
COPY his_pacs_ws ./his_pacs_ws
RUN python -m venv /opt/his-pacs-ws \
    && /opt/his-pacs-ws/bin/pip install --no-cache-dir -c constraints.txt . \
    && rm -rf /root/.cache

USER hisws
ENV HIS_PACS_HOST=0.0.0.0 \
    HIS_PACS_DATA_DIR=/var/lib/his-pacs-ws \
    HIS_PACS_LOG_FORMAT=json \
    PATH=/opt/his-pacs-ws/bin:$PATH
VOLUME /var/lib/his-pacs-ws
WORKDIR /var/lib/his-pacs-ws
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"
STOPSIGNAL SIGTERM
ENTRYPOINT ["his-pacs-ws"]
CMD ["serve"]
