{{/* Full name: the release name when it already names the chart, else "<release>-<chart>". */}}
{{- define "chsc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release. */}}
{{- define "chsc.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. No Helm-only labels (managed-by, helm.sh/chart): config/ is this chart's
     rendering and must not claim to be managed by Helm. */}}
{{- define "chsc.labels" -}}
{{ include "chsc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: flux
{{- end -}}

{{- define "chsc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "chsc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The label that aggregates a ClusterRole into the drift reader. */}}
{{- define "chsc.driftAggregationLabel" -}}
source.confighub.com/aggregate-to-drift: "true"
{{- end -}}
