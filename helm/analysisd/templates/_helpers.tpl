{{- define "analysisd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "analysisd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "analysisd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "analysisd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "analysisd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "analysisd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "analysisd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "analysisd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Refuse configurations that cannot work, with a message saying what to change. */}}
{{- define "analysisd.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.store.postgres.enabled) -}}
{{- fail (printf "replicaCount=%d needs store.postgres.enabled=true: replicas share work through PostgreSQL, and the SQLite default is a single-writer file. Set store.postgres.url or store.postgres.existingSecret, or use replicaCount=1." (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and .Values.store.postgres.enabled (not (or .Values.store.postgres.url .Values.store.postgres.existingSecret)) -}}
{{- fail "store.postgres.enabled=true needs store.postgres.url or store.postgres.existingSecret" -}}
{{- end -}}
{{- end -}}
