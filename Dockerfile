FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV VAR_DIR=/var/lib/kotatsu MODEL_CACHE_DIR=/models PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["python", "manage.py", "web"]
