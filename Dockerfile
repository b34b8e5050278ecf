FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# DEBUG is off by default; said here too so no one has to know. SECRET_KEY and JWT_KEYS come
# from the environment at run time (the app refuses to start on a weak or default one).
ENV DJANGO_SETTINGS_MODULE=flashsale.settings.base PYTHONUNBUFFERED=1 DEBUG=0
EXPOSE 8000 8001
