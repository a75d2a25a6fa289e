{{/* The text of NOTES.txt, a named template so tests can render it with `helm template`. */}}
{{- define "dugaa-dispatcher.notes" -}}
DUGAA dispatcher {{ include "dugaa-dispatcher.version" . }} is deployed as {{ include "dugaa-dispatcher.fullname" . }} in namespace {{ .Release.Namespace }}.

Consumer group: {{ .Values.config.group_id }}
Input topics:   {{ join ", " .Values.config.topics.events }}
{{- if .Values.keda.enabled }}
Scaling:        KEDA on consumer-group lag ({{ .Values.keda.minReplicaCount }}-{{ .Values.keda.maxReplicaCount }} replicas, {{ .Values.keda.lagThreshold }} lag per replica)
{{- else if .Values.autoscaling.enabled }}
Scaling:        HPA on CPU ({{ .Values.autoscaling.minReplicas }}-{{ .Values.autoscaling.maxReplicas }} replicas)
{{- else }}
Replicas:       {{ .Values.replicaCount }}
{{- end }}
Replicas beyond the partition count of the input topics stay idle and not ready.

Watch the rollout (pods become ready once connected to Kafka and assigned partitions):
  kubectl -n {{ .Release.Namespace }} rollout status deployment/{{ include "dugaa-dispatcher.fullname" . }}

Health and metrics:
  kubectl -n {{ .Release.Namespace }} port-forward svc/{{ include "dugaa-dispatcher.fullname" . }} {{ .Values.service.port }}:{{ .Values.service.port }}
  curl -s localhost:{{ .Values.service.port }}/readyz
  curl -s localhost:{{ .Values.service.port }}/metrics | grep ^dispatcher_

{{- if not .Values.serviceMonitor.enabled }}

Prometheus: set serviceMonitor.enabled=true (Prometheus Operator), or scrape port "http" path /metrics.
{{- end }}

Alert rules, the Grafana dashboard and the runbook live in the repository under deploy/.
Check your hooks before changing them:  dispatcher hooks validate hooks.yaml
{{- end }}
