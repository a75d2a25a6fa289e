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

{{- if .Values.admin.enabled }}
{{- include "dugaa-dispatcher.adminNotes" . }}
{{- end }}

Alert rules, the Grafana dashboard and the runbook live in the repository under deploy/.
Check your hooks before changing them:  dispatcher hooks validate hooks.yaml
{{- end }}

{{/* What the admin service needs before it starts: the tokens Secret, which the chart only
references (each key once in the command, however many entries name it). */}}
{{- define "dugaa-dispatcher.adminNotes" -}}
{{- $ns := .Release.Namespace }}
{{- $admin := printf "%s-admin" (include "dugaa-dispatcher.fullname" .) }}
{{- $secret := include "dugaa-dispatcher.adminTokensSecret" . }}
{{- $keys := list }}
{{- $uses := list }}
{{- range .Values.admin.tokens }}
{{- $keys = append $keys .key }}
{{- $uses = append $uses (printf "%s (%s%s)" .key .role (ternary (printf ", tenant %s" .tenant) "" (not (empty .tenant)))) }}
{{- end }}
{{- with .Values.admin.sessionKey }}
{{- $keys = append $keys . }}
{{- $uses = append $uses (printf "%s (signs console sessions)" .) }}
{{- end }}
{{- $keys = uniq $keys }}

Admin console and API ({{ $admin }}): the chart never creates the Secret of its tokens, and
its pod waits (CreateContainerConfigError) until the Secret {{ $secret }} holds
the keys {{ join ", " $uses }}.
Create it (tokens of 16+ characters{{ if .Values.admin.sessionKey }}, the session key 32+{{ end }}):
  kubectl -n {{ $ns }} create secret generic {{ $secret }}
{{- range $keys }} \
    --from-literal={{ . }}="$(openssl rand -hex {{ if eq . $.Values.admin.sessionKey }}32{{ else }}24{{ end }})"
{{- end }}
Read a token back:
  kubectl -n {{ $ns }} get secret {{ $secret }} -o jsonpath='{.data.{{ first $keys }}}' | base64 -d
Sign in to the console at http://localhost:{{ .Values.admin.port }}/ with a token, or call the API with it
(curl -H "Authorization: Bearer $TOKEN" localhost:{{ .Values.admin.port }}/api/hooks), after:
  kubectl -n {{ $ns }} port-forward svc/{{ $admin }} {{ .Values.admin.port }}:{{ .Values.admin.port }}
A token changed in the Secret counts once the admin pod restarts:
  kubectl -n {{ $ns }} rollout restart deployment/{{ $admin }}
{{- end }}
