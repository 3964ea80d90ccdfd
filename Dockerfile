# One image for every gogo process (web, http, workers, beat); the command differs per service.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# gcc builds the COB engine's C library (ml/market/native) at image build time.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN python -m ml.market.native
# Production (DJANGO_DEBUG=false) serves static files from STATIC_ROOT (whitenoise, no finder scan).
RUN python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["uvicorn", "gogo.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "on", "--ws", "websockets-sansio"]
