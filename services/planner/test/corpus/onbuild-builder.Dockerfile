FROM python:3.12-slim
ENV APP_HOME=/app
WORKDIR $APP_HOME
ONBUILD COPY requirements.txt $APP_HOME/
ONBUILD RUN pip install --no-cache-dir -r requirements.txt
ONBUILD COPY . $APP_HOME
CMD ["python", "main.py"]
