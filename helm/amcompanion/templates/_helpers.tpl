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
