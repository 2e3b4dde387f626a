# syntax=docker/dockerfile:1
# Wardline image: compiled JavaScript on Node 20, no TypeScript loader at run time.
#   docker build -t wardline .
#   docker run --rm -e DATABASE_URL=... -e REDIS_URL=... -e JWT_SECRET=... -p 4000:4000 wardline serve
ARG NODE_IMAGE=node:20-bookworm-slim

# 1. Compile: every dependency (typescript is a dev dependency), then `npm run build` → dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Runtime dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# 3. Run: dist/ + drizzle/ (migrations are read from it at start and by `migrate`) + models/ (the
#    shipped model artifacts, loaded by every process that scores)
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    DATA_DIR=/app/.data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY drizzle ./drizzle
COPY models ./models
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 4000
# sub-command: all | serve | worker | migrate | seed | token (see README)
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["all"]
