{{/*
The chart's name, and the name of its objects: "<release>-amcompanion", or the release's name alone when it
already contains the chart's name (so `helm install amcompanion ...` gives the Service "amcompanion", which is
the URL the bundled catalog's receiver.url and Alertmanager config use).
*/}}
{{- define "amcompanion.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "amcompanion.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "amcompanion.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: the ones that never change between releases (a StatefulSet's selector and its
volumeClaimTemplates are immutable). Call with (dict "ctx" $ "component" "receiver").
*/}}
{{- define "amcompanion.selectorLabels" -}}
app.kubernetes.io/name: {{ include "amcompanion.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Every object's labels. Call with (dict "ctx" $ "component" "receiver").
*/}}
{{- define "amcompanion.labels" -}}
helm.sh/chart: {{ include "amcompanion.chart" .ctx }}
{{ include "amcompanion.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | replace "@" "_" | replace ":" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: amcompanion
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "amcompanion.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The receiver's config, the values' `config`: without one the install fails, saying how to pass it (a default
would deploy the example catalog's contacts and page nobody of yours). */}}
{{- define "amcompanion.config" -}}
{{- if not .Values.config }}
{{- fail "no receiver config: pass the one your catalog compiled to, e.g. `helm install amcompanion helm/amcompanion --set-file config=generated/receiver/receiver.yaml` (`amcompanion compile` writes it)" }}
{{- end }}
{{- .Values.config }}
{{- end }}

{{- define "amcompanion.historyName" -}}
{{- printf "%s-history" (include "amcompanion.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
PostgreSQL mode: "true" when postgresql.url or postgresql.existingSecret is set (the receivers then share that
database and run as a Deployment), empty otherwise (SQLite on the StatefulSet's volume). Both set is refused.
*/}}
{{- define "amcompanion.postgresql" -}}
{{- $pg := .Values.postgresql }}
{{- if and $pg.url $pg.existingSecret }}
{{- fail "postgresql.url and postgresql.existingSecret are both set: give the database's URL one way only, either postgresql.existingSecret (your Secret holding it under postgresql.secretKey; what a URL with a password wants) or postgresql.url (the chart puts it into a Secret of its own)" }}
{{- end }}
{{- if or $pg.url $pg.existingSecret }}true{{ end }}
{{- end }}

{{/* The Secret holding the PostgreSQL URL: the user's postgresql.existingSecret, or the chart's for postgresql.url. */}}
{{- define "amcompanion.postgresqlSecretName" -}}
{{- if .Values.postgresql.existingSecret }}
{{- .Values.postgresql.existingSecret }}
{{- else }}
{{- printf "%s-postgresql" (include "amcompanion.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "amcompanion.postgresqlSecretKey" -}}
{{- if .Values.postgresql.existingSecret }}{{ .Values.postgresql.secretKey }}{{ else }}url{{ end }}
{{- end }}

{{/* AMCOMPANION_DB, the PostgreSQL URL, from its Secret (never a plain value: the URL may carry a password). */}}
{{- define "amcompanion.postgresqlEnv" -}}
- name: AMCOMPANION_DB
  valueFrom:
    secretKeyRef:
      name: {{ include "amcompanion.postgresqlSecretName" . }}
      key: {{ include "amcompanion.postgresqlSecretKey" . }}
{{- end }}

{{/* The receivers' pod template's annotations: the config's checksum (a new config rolls the pods), then
podAnnotations. No checksum of postgresql.url: a hash of a URL is a hash of its password, and pods' annotations are
read by more people than Secrets. */}}
{{- define "amcompanion.podAnnotations" -}}
checksum/config: {{ include "amcompanion.config" . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* What every pod of the chart has: no service account token, no service links, imagePullSecrets, the pod's
security context. */}}
{{- define "amcompanion.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Where pods go: nodeSelector, tolerations, and the affinity given (call with (dict "ctx" $ "affinity" ...)). */}}
{{- define "amcompanion.podPlacement" -}}
{{- with .ctx.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .ctx.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The receiver container (`amcompanion serve`). Call with (dict "ctx" $ "postgresql" true|false): on SQLite its
history is --db on the volume at /var/lib/amcompanion; on PostgreSQL it reads the URL from AMCOMPANION_DB (a
Secret), with no --db argument and no volume but /tmp.
*/}}
{{- define "amcompanion.receiverContainer" -}}
{{- $ctx := .ctx -}}
- name: receiver
  image: {{ include "amcompanion.image" $ctx | quote }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    - serve
    - --config
    - /etc/amcompanion/receiver.yaml
    {{- if not .postgresql }}
    - --db
    - /var/lib/amcompanion/history.db
    {{- end }}
    - --listen
    - 0.0.0.0:8080
    {{- range $ctx.Values.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- with $ctx.Values.existingSecret }}
  envFrom:
    - secretRef:
        name: {{ . }}
  {{- end }}
  {{- if or .postgresql $ctx.Values.extraEnv }}
  env:
    {{- if .postgresql }}
    {{- include "amcompanion.postgresqlEnv" $ctx | nindent 4 }}
    {{- end }}
    {{- with $ctx.Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: http
      containerPort: 8080
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    {{- toYaml $ctx.Values.receiver.livenessProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    {{- toYaml $ctx.Values.receiver.readinessProbe | nindent 4 }}
  securityContext:
    {{- toYaml $ctx.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $ctx.Values.receiver.resources | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/amcompanion
      readOnly: true
    {{- if not .postgresql }}
    - name: data
      mountPath: /var/lib/amcompanion
    {{- end }}
    - name: tmp
      mountPath: /tmp
{{- end }}

{{/*
The history container (`amcompanion history serve`, Datasette) on /var/lib/amcompanion/history.db. Call with
(dict "ctx" $ "readOnly" true|false): read-only beside the SQLite receiver, whose open connection keeps the
database's -wal and -shm files there; writable on the mirror's copy, which the mirror closes after each pass (its
-wal and -shm go with it, and a reader must be able to make them again; Datasette still opens the file read-only).
*/}}
{{- define "amcompanion.historyContainer" -}}
{{- $ctx := .ctx -}}
- name: history
  image: {{ include "amcompanion.image" $ctx | quote }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    - history
    - serve
    - --db
    - /var/lib/amcompanion/history.db
    - --host
    - 0.0.0.0
    - --port
    - "8001"
    - --time-zone
    - {{ $ctx.Values.history.timeZone | quote }}
  ports:
    - name: history
      containerPort: 8001
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /-/versions.json
      port: history
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 6
  readinessProbe:
    httpGet:
      path: /-/versions.json
      port: history
    periodSeconds: 10
    timeoutSeconds: 5
  securityContext:
    {{- toYaml $ctx.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $ctx.Values.history.resources | nindent 4 }}
  volumeMounts:
    - name: data
      mountPath: /var/lib/amcompanion
      {{- if .readOnly }}
      readOnly: true
      {{- end }}
    - name: history-tmp
      mountPath: /tmp
{{- end }}
