{{/* Names: at most 40 characters, so that "<fullname>-minio-buckets" and StatefulSet pod and
PVC names stay within Kubernetes' limits. */}}
{{- define "hlsforge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "hlsforge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hlsforge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "api"). */}}
{{- define "hlsforge.labels" -}}
helm.sh/chart: {{ include "hlsforge.chart" .ctx }}
{{ include "hlsforge.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: hlsforge
{{- end }}

{{- define "hlsforge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hlsforge.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* "repository:tag" of images.<which>; an empty tag means the appVersion. */}}
{{- define "hlsforge.image" -}}
{{- $image := index .ctx.Values.images .which }}
{{- printf "%s:%s" $image.repository (default .ctx.Chart.AppVersion $image.tag) }}
{{- end }}

{{- define "hlsforge.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod and container security: non-root, read-only root filesystem, nothing extra. */}}
{{- define "hlsforge.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "hlsforge.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Secret names. */}}
{{- define "hlsforge.authSecretName" -}}
{{- default (printf "%s-auth" (include "hlsforge.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "hlsforge.s3SecretName" -}}
{{- default (printf "%s-s3" (include "hlsforge.fullname" .)) .Values.s3.existingSecret }}
{{- end }}

{{- define "hlsforge.minioRootSecretName" -}}
{{- default (printf "%s-minio-root" (include "hlsforge.fullname" .)) .Values.minio.auth.existingSecret }}
{{- end }}

{{- define "hlsforge.mongodbSecretName" -}}
{{- default (printf "%s-mongodb" (include "hlsforge.fullname" .)) .Values.mongodb.auth.existingSecret }}
{{- end }}

{{- define "hlsforge.mongodbUriSecretName" -}}
{{- default (printf "%s-mongodb-uri" (include "hlsforge.fullname" .)) .Values.mongodb.external.existingSecret }}
{{- end }}

{{/* The Secret and key of the API's Redis URL: the built-in Redis' Secret (key url), the
external Redis' existing Secret, or the one the chart makes from redis.url. */}}
{{- define "hlsforge.redisSecretName" -}}
{{- $fullname := include "hlsforge.fullname" . }}
{{- if .Values.redis.enabled }}
{{- printf "%s-redis" $fullname }}
{{- else }}
{{- default (printf "%s-redis-url" $fullname) .Values.redis.existingSecret }}
{{- end }}
{{- end }}

{{- define "hlsforge.redisUrlKey" -}}
{{- ternary .Values.redis.existingSecretKey "url" (and (not .Values.redis.enabled) (not (empty .Values.redis.existingSecret))) }}
{{- end }}

{{/* Whether the API gets a Redis URL at all (without one it keeps Socket.IO rooms in memory,
which only one replica may do). */}}
{{- define "hlsforge.redisUsed" -}}
{{- if or .Values.redis.enabled .Values.redis.url .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{/* A Secret's data value (base64): kept from the live Secret when there is one (upgrades),
else random and alphanumeric (so that a password is URL-safe in the MongoDB URI). Call with
(dict "ctx" $ "name" NAME "key" KEY "length" N). `helm template` and `--dry-run` see no
cluster, so they always show fresh random values. */}}
{{- define "hlsforge.secretValue" -}}
{{- $live := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $live $live.data (hasKey $live.data .key) }}
{{- index $live.data .key }}
{{- else }}
{{- randAlphaNum (int .length) | b64enc }}
{{- end }}
{{- end }}

{{/* Service host names, qualified by namespace so that Jobs in other namespaces reach them. */}}
{{- define "hlsforge.apiUrl" -}}
{{- printf "http://%s-api.%s.svc:%d" (include "hlsforge.fullname" .) .Release.Namespace (int .Values.api.service.port) }}
{{- end }}

{{- define "hlsforge.s3Endpoint" -}}
{{- if .Values.s3.endpoint }}
{{- .Values.s3.endpoint }}
{{- else if .Values.minio.enabled }}
{{- printf "http://%s-minio.%s.svc:%d" (include "hlsforge.fullname" .) .Release.Namespace (int .Values.minio.service.port) }}
{{- end }}
{{- end }}

{{- define "hlsforge.mongodbHost" -}}
{{- printf "%s-mongodb.%s.svc" (include "hlsforge.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "hlsforge.redisHost" -}}
{{- printf "%s-redis.%s.svc" (include "hlsforge.fullname" .) .Release.Namespace }}
{{- end }}

{{/* The API's and the operator's `checksum/config` annotation: a change to what their Secrets
hold rolls them. Only deterministic inputs: the Secrets' names and the values the chart copies
into them (external S3 keys, an external MongoDB URI or Redis URL). Generated values are left out: they are
kept on upgrade anyway, and hashing them would change the checksum between the first install
(fresh random values) and the first upgrade (values read back with `lookup`). */}}
{{- define "hlsforge.configChecksum" -}}
{{- $inputs := dict
  "auth" (include "hlsforge.authSecretName" .)
  "s3" (include "hlsforge.s3SecretName" .)
  "s3Keys" (ternary "" (list .Values.s3.accessKeyId .Values.s3.secretAccessKey | toJson) (or .Values.minio.enabled (not (empty .Values.s3.existingSecret))))
  "mongodb" (ternary (include "hlsforge.mongodbSecretName" .) (include "hlsforge.mongodbUriSecretName" .) .Values.mongodb.enabled)
  "mongodbUri" (ternary "" .Values.mongodb.external.uri (or .Values.mongodb.enabled (not (empty .Values.mongodb.external.existingSecret))))
  "redis" (ternary (printf "%s/%s" (include "hlsforge.redisSecretName" .) (include "hlsforge.redisUrlKey" .)) "" (eq (include "hlsforge.redisUsed" .) "true"))
  "redisUrl" (ternary "" .Values.redis.url (or .Values.redis.enabled (not (empty .Values.redis.existingSecret))))
}}
{{- toJson $inputs | sha256sum | trunc 16 }}
{{- end }}

{{/* Environment shared by the API and the operator. Credentials only by secretKeyRef; the
built-in MongoDB's URI is composed from the password variable by the kubelet, unescaped: the
password must be URL-safe (generated ones are alphanumeric). */}}
{{- define "hlsforge.mongodbEnv" -}}
{{- if .Values.mongodb.enabled }}
- name: MONGODB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "hlsforge.mongodbSecretName" . }}
      key: password
- name: HLSFORGE_MONGODB_URI
  value: {{ printf "mongodb://%s:$(MONGODB_PASSWORD)@%s:27017/%s?authSource=%s" .Values.mongodb.auth.username (include "hlsforge.mongodbHost" .) .Values.mongodb.database .Values.mongodb.database | quote }}
{{- else }}
- name: HLSFORGE_MONGODB_URI
  valueFrom:
    secretKeyRef:
      name: {{ include "hlsforge.mongodbUriSecretName" . }}
      key: {{ ternary .Values.mongodb.external.existingSecretKey "uri" (not (empty .Values.mongodb.external.existingSecret)) }}
{{- end }}
- name: HLSFORGE_MONGODB_DATABASE
  value: {{ .Values.mongodb.database | quote }}
{{- end }}

{{- define "hlsforge.s3Env" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "hlsforge.s3SecretName" . }}
      key: accessKeyId
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "hlsforge.s3SecretName" . }}
      key: secretAccessKey
- name: AWS_DEFAULT_REGION
  value: {{ .Values.s3.region | quote }}
{{- end }}

{{/* MinIO's root credentials: for MinIO and its bucket Job only. */}}
{{- define "hlsforge.minioRootEnv" -}}
- name: MINIO_ROOT_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "hlsforge.minioRootSecretName" . }}
      key: rootUser
- name: MINIO_ROOT_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "hlsforge.minioRootSecretName" . }}
      key: rootPassword
{{- end }}

{{- define "hlsforge.serviceTokenEnv" -}}
- name: HLSFORGE_SERVICE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "hlsforge.authSecretName" . }}
      key: serviceToken
{{- end }}

{{/* Values that the schema cannot check: fail early with a clear message. */}}
{{- define "hlsforge.validate" -}}
{{- if and (not .Values.mongodb.enabled) (not .Values.mongodb.external.uri) (not .Values.mongodb.external.existingSecret) }}
{{- fail "mongodb.enabled is false: set mongodb.external.uri or mongodb.external.existingSecret" }}
{{- end }}
{{- if and (not .Values.minio.enabled) (not .Values.s3.existingSecret) (not (and .Values.s3.accessKeyId .Values.s3.secretAccessKey)) }}
{{- fail "minio.enabled is false: set s3.existingSecret (keys accessKeyId, secretAccessKey) or s3.accessKeyId and s3.secretAccessKey" }}
{{- end }}
{{- if and .Values.minio.enabled (or .Values.s3.accessKeyId .Values.s3.secretAccessKey) }}
{{- fail "s3.accessKeyId/s3.secretAccessKey are for an external S3; the built-in MinIO's keys are generated (or use s3.existingSecret)" }}
{{- end }}
{{- if and (gt (int .Values.api.replicas) 1) (ne (include "hlsforge.redisUsed" .) "true") }}
{{- fail (printf "api.replicas is %d: the API replicas share Socket.IO events over Redis: keep redis.enabled, or set redis.url or redis.existingSecret (or api.replicas: 1)" (int .Values.api.replicas)) }}
{{- end }}
{{- if and .Values.redis.enabled (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "redis.url/redis.existingSecret are for an external Redis: set redis.enabled to false to use them (the built-in Redis' password is generated)" }}
{{- end }}
{{- end }}

{{/* The sample VideoTranscode of NOTES.txt (tests validate it against the CRD). */}}
{{- define "hlsforge.sampleTranscode" -}}
apiVersion: hlsforge.dev/v1alpha1
kind: VideoTranscode
metadata:
  name: sample
  namespace: {{ .Release.Namespace }}
spec:
  source:
    bucket: {{ .Values.s3.uploadBucket }}
    key: samples/sample.mp4
  output:
    bucket: {{ .Values.s3.mediaBucket }}
    prefix: samples/sample
{{- end }}
