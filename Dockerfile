# One image for every gogo process (web, workers, beat); the command differs per service.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 8000
CMD ["uvicorn", "gogo.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "on"]
