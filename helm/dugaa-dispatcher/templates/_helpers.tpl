{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "dugaa-dispatcher.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart, unless the release name already holds the chart's. */}}
{{- define "dugaa-dispatcher.fullname" -}}
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

{{- define "dugaa-dispatcher.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The standard app.kubernetes.io labels, on every object. */}}
{{- define "dugaa-dispatcher.labels" -}}
helm.sh/chart: {{ include "dugaa-dispatcher.chart" . }}
{{ include "dugaa-dispatcher.selectorLabels" . }}
app.kubernetes.io/version: {{ include "dugaa-dispatcher.version" . | quote }}
app.kubernetes.io/component: dispatcher
app.kubernetes.io/part-of: dugaa
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The immutable subset used by selectors. */}}
{{- define "dugaa-dispatcher.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dugaa-dispatcher.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The admin service's labels: its own name in the selector, so no worker selector takes its pods. */}}
{{- define "dugaa-dispatcher.adminLabels" -}}
helm.sh/chart: {{ include "dugaa-dispatcher.chart" . }}
app.kubernetes.io/name: {{ include "dugaa-dispatcher.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "dugaa-dispatcher.version" . | quote }}
app.kubernetes.io/component: admin
app.kubernetes.io/part-of: dugaa
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dugaa-dispatcher.adminSelectorLabels" -}}
app.kubernetes.io/name: {{ include "dugaa-dispatcher.name" . }}-admin
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The admin pod's labels: its selector's, and the shared ones but the chart's. */}}
{{- define "dugaa-dispatcher.adminPodLabels" -}}
{{ include "dugaa-dispatcher.adminSelectorLabels" . }}
app.kubernetes.io/version: {{ include "dugaa-dispatcher.version" . | quote }}
app.kubernetes.io/component: admin
app.kubernetes.io/part-of: dugaa
{{- end }}

{{/* A pod template's metadata, the workers' and the admin's: its own `labels` (a dict's
"labels", beside "root"), the config checksum that rolls it, and the release's podAnnotations
and podLabels, which both pods take (a sidecar's annotation, a NetworkPolicy's label). */}}
{{- define "dugaa-dispatcher.podMetadata" -}}
{{- $root := .root }}
annotations:
  # Rolls the pods whenever dispatcher.yaml or hooks.yaml changes.
  checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
  {{- with $root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
labels:
  {{- .labels | nindent 2 }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The pod spec's fields from the release's values, the workers' and the admin's ("root",
and "admin" true for the admin pod). The admin pod takes the node affinity of `affinity`, not
its pod (anti-)affinity, nor topologySpreadConstraints: those place the workers among each
other, and a required anti-affinity to the workers would keep the one admin pod off every node
that runs one. */}}
{{- define "dugaa-dispatcher.podSpec" -}}
{{- $values := .root.Values }}
serviceAccountName: {{ include "dugaa-dispatcher.serviceAccountName" .root }}
automountServiceAccountToken: {{ $values.serviceAccount.automountServiceAccountToken }}
# No Docker-link variables of the namespace's Services: a Service named dispatcher-...
# (the release `dispatcher`, say) would put DISPATCHER_..._SERVICE_HOST in the environment,
# which the dispatcher refuses as an unknown DISPATCHER_<KEY> override.
enableServiceLinks: false
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml $values.podSecurityContext | nindent 2 }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $affinity := $values.affinity }}
{{- if .admin }}
{{- $affinity = pick (default dict $affinity) "nodeAffinity" }}
{{- end }}
{{- with $affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if not .admin }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "dugaa-dispatcher.adminTokensSecret" -}}
{{- default (printf "%s-admin-tokens" (include "dugaa-dispatcher.fullname" .)) .Values.admin.tokensSecret }}
{{- end }}

{{- define "dugaa-dispatcher.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dugaa-dispatcher.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dugaa-dispatcher.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dugaa-dispatcher.httpPort" -}}
{{- .Values.config.http_port | default 9400 | int }}
{{- end }}

{{/* The name of worker i's port: `http` for worker 0 (the probes' port), else http-w<i>. */}}
{{- define "dugaa-dispatcher.workerPortName" -}}
{{- if eq (int .) 0 }}http{{ else }}http-w{{ . }}{{ end }}
{{- end }}

{{/* The admin port of the workers' dispatcher.yaml, which their ports skip: admin.port, or
without the admin service config.admin.port (the dispatcher's default 9401). */}}
{{- define "dugaa-dispatcher.workersAdminPort" -}}
{{- $config := default dict .Values.config.admin }}
{{- if .Values.admin.enabled }}
{{- .Values.admin.port | int }}
{{- else if hasKey $config "port" }}
{{- $config.port | int }}
{{- else }}
{{- 9401 }}
{{- end }}
{{- end }}

{{/* A container port per worker process, as engine/processes.py worker_port picks it: worker 0
on http_port, worker i on http_port + i, or one more where the admin port lies between. */}}
{{- define "dugaa-dispatcher.workerPorts" -}}
{{- $base := include "dugaa-dispatcher.httpPort" . | int }}
{{- $admin := include "dugaa-dispatcher.workersAdminPort" . | int }}
{{- range $i := until (int .Values.workers) }}
{{- $port := add $base $i }}
{{- if and (gt $i 0) (lt $base $admin) (le $admin $port) }}
{{- $port = add $port 1 }}
{{- end }}
- name: {{ include "dugaa-dispatcher.workerPortName" $i }}
  containerPort: {{ $port }}
  protocol: TCP
{{- end }}
{{- end }}

{{/* Unset: past the drain deadline by the worker's stop watchdog (30 s: a stop that hangs then
writes its threads' stacks and exits, engine/worker.py STOP_WATCHDOG) and 10 s more. */}}
{{- define "dugaa-dispatcher.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (int .Values.drainTimeoutSeconds) 40 }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/* dispatcher.yaml: the user's config plus the keys the chart owns (port, hooks file, drain). */}}
{{- define "dugaa-dispatcher.dispatcherYaml" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg "http_port" (include "dugaa-dispatcher.httpPort" . | int) }}
{{- $_ := set $cfg "drain_timeout" (printf "%ds" (int .Values.drainTimeoutSeconds)) }}
{{- $_ := set $cfg "consume" .Values.consume }}
{{- if .Values.hooks }}
{{- $_ := set $cfg "hooks_file" "/etc/dispatcher/hooks.yaml" }}
{{- end }}
{{- if .Values.admin.enabled }}
{{- $tokens := list }}
{{- range $i, $t := .Values.admin.tokens }}
{{- $token := dict "token" (printf "${env:DUGAA_ADMIN_TOKEN_%d}" $i) "role" $t.role }}
{{- if $t.tenant }}
{{- $_ := set $token "tenant" $t.tenant }}
{{- end }}
{{- $tokens = append $tokens $token }}
{{- end }}
{{- $admin := dict "host" "0.0.0.0" "port" (int .Values.admin.port) "data_dir" "/var/lib/dispatcher-admin" "retention" .Values.admin.retention "max_records" (int .Values.admin.maxRecords) "tokens" $tokens }}
{{- /* the keys of config.admin that the chart does not set (session_ttl, request_timeout ...) */}}
{{- $admin = merge $admin (deepCopy (default dict .Values.config.admin)) }}
{{- with .Values.admin.trustedProxies }}
{{- $_ := set $admin "trusted_proxies" . }}
{{- end }}
{{- if .Values.admin.sessionKey }}
{{- $_ := set $admin "session_key" "${env:DUGAA_ADMIN_SESSION_KEY}" }}
{{- end }}
{{- $_ := set $cfg "admin" $admin }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Settings that cannot work together fail the render with a message saying what to change. */}}
{{- define "dugaa-dispatcher.validate" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled are both true: enable either the HPA or the KEDA ScaledObject, never both (KEDA manages its own HPA)" }}
{{- end }}
{{- if le (include "dugaa-dispatcher.terminationGracePeriodSeconds" . | int) (int .Values.drainTimeoutSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%s) must exceed drainTimeoutSeconds (%d), or pods are killed mid-drain" (include "dugaa-dispatcher.terminationGracePeriodSeconds" .) (int .Values.drainTimeoutSeconds)) }}
{{- end }}
{{- include "dugaa-dispatcher.validateOwnedConfig" . }}
{{- include "dugaa-dispatcher.validateNoInlineCredentials" . }}
{{- if and .Values.keda.enabled (eq .Values.consume "share") }}
{{- fail "keda.enabled scales on consumer-group lag, which consume: share does not have (a share group has no committed offsets): scale share-mode workers with autoscaling.enabled (CPU)" }}
{{- end }}
{{- $envPrefix := index (default dict .Values.config.secrets) "env_prefix" | default "DISPATCHER_SECRET_" }}
{{- if and .Values.admin.enabled (hasPrefix $envPrefix "DUGAA_ADMIN_") }}
{{- fail (printf "config.secrets.env_prefix %q would let hooks from the hook store read the admin tokens (DUGAA_ADMIN_TOKEN_<i>): choose a prefix that DUGAA_ADMIN_ does not start with" $envPrefix) }}
{{- end }}
{{- if and .Values.keda.enabled (not (include "dugaa-dispatcher.kedaBootstrapServers" .)) }}
{{- fail "keda.enabled needs keda.bootstrapServers or config.kafka[\"bootstrap.servers\"]" }}
{{- end }}
{{- end }}

{{- define "dugaa-dispatcher.kedaBootstrapServers" -}}
{{- default (index (default dict .Values.config.kafka) "bootstrap.servers") .Values.keda.bootstrapServers }}
{{- end }}

{{/* Keys of dispatcher.yaml that the chart writes from values of its own: the same key under
`config` would be overwritten without a word, so it fails the render naming the value to set. */}}
{{- define "dugaa-dispatcher.validateOwnedConfig" -}}
{{- $config := .Values.config }}
{{- range $key, $use := dict "consume" "the top-level consume" "drain_timeout" "drainTimeoutSeconds" }}
{{- if hasKey $config $key }}
{{- fail (printf "config.%s is written by the chart: use %s instead" $key $use) }}
{{- end }}
{{- end }}
{{- if and .Values.hooks (hasKey $config "hooks_file") }}
{{- fail "config.hooks_file and hooks are both set: the chart points hooks_file at the hooks of `hooks`; set either hooks or config.hooks_file" }}
{{- end }}
{{- $owned := dict "host" "nothing (the chart binds the admin service to 0.0.0.0)" "port" "admin.port" "data_dir" "admin.persistence (the chart keeps the index on its volume)" "retention" "admin.retention" "max_records" "admin.maxRecords" "tokens" "admin.tokens" "trusted_proxies" "admin.trustedProxies" "session_key" "admin.sessionKey" }}
{{- if .Values.admin.enabled }}
{{- range $key, $use := $owned }}
{{- if hasKey (default dict $config.admin) $key }}
{{- fail (printf "config.admin.%s is written by the chart while admin.enabled: use %s instead" $key $use) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* the same keys as DISPATCHER_<KEY> overrides (config/settings.py), which win over the file */}}
{{- $variables := dict "DISPATCHER_HTTP_PORT" "config.http_port" "DISPATCHER_DRAIN_TIMEOUT" "drainTimeoutSeconds" "DISPATCHER_CONSUME" "the top-level consume" "DISPATCHER_HOOKS_FILE" "hooks or config.hooks_file" }}
{{- if .Values.admin.enabled }}
{{- range $key, $use := $owned }}
{{- $_ := set $variables (printf "DISPATCHER_ADMIN_%s" (upper $key)) $use }}
{{- end }}
{{- else }}
{{- /* the workers' ports skip the admin port (dugaa-dispatcher.workerPorts) */}}
{{- $_ := set $variables "DISPATCHER_ADMIN_PORT" "config.admin.port" }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if hasKey $variables .name }}
{{- fail (printf "extraEnv %s overrides a key the chart writes (its probes, ports and checks go by it): use %s instead" .name (get $variables .name)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The variables of `secrets.env`, each from its Secret's key: the workers' and the admin's. */}}
{{- define "dugaa-dispatcher.secretEnv" -}}
{{- range .Values.secrets.env }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
      {{- if hasKey . "optional" }}
      optional: {{ .optional }}
      {{- end }}
{{- end }}
{{- end }}

{{/* The label matchers that pick this release's series out of every dispatcher's: those its
ServiceMonitor's scrape gives (the job is the Service's name), or prometheusRule.seriesSelector. */}}
{{- define "dugaa-dispatcher.seriesSelector" -}}
{{- .Values.prometheusRule.seriesSelector | default (printf "job=%q,namespace=%q" (include "dugaa-dispatcher.fullname" .) .Release.Namespace) }}
{{- end }}

{{/* The alerts of files/alerts.yml as this release's own: each query selects the release's
series (the file's job="dugaa-dispatcher", the job docker-compose scrapes, replaced), its group
is named after the release, and each alert carries the release's namespace and name, so that
two releases in one cluster neither page for each other's series nor merge into one alert; its
runbook_url points into prometheusRule.runbookUrl when that is set.
The rules' own {{ $labels.hook }} templates are Prometheus's: the file is never run through tpl. */}}
{{- define "dugaa-dispatcher.alertRules" -}}
{{- $rules := .Files.Get "files/alerts.yml" }}
{{- $rules = replace "job=\"dugaa-dispatcher\"" (include "dugaa-dispatcher.seriesSelector" .) $rules }}
{{- with dig "topics" "retry_prefix" "" .Values.config }}
{{- /* The lag alert leaves the tiers out by name (<retry_prefix>.<delay>); the file's
     pattern, any topic with .retry. in its name, fits the default prefix. */}}
{{- $tiers := printf "%q" (printf "%s\\..*" (regexQuoteMeta .)) }}
{{- $rules = replace "\".*\\\\.retry\\\\..*\"" $tiers $rules }}
{{- end }}
{{- $alerts := fromYaml $rules }}
{{- range $alerts.groups }}
{{- $_ := set . "name" (printf "%s:%s/%s" .name $.Release.Namespace $.Release.Name) }}
{{- range $rule := .rules }}
{{- $_ := set $rule.labels "namespace" $.Release.Namespace }}
{{- $_ := set $rule.labels "release" $.Release.Name }}
{{- with $.Values.prometheusRule.runbookUrl }}
{{- $_ := set $rule.annotations "runbook_url" (replace "deploy/RUNBOOK.md" . $rule.annotations.runbook_url) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $alerts }}
{{- end }}

{{/* dispatcher.yaml and hooks.yaml are a ConfigMap, stored and shown in plain text: a credential
in `config` (a Kafka or schema registry property named as one) or in a hook (its auth's secret,
its encryption keys) must be a ${env:NAME} or ${file:/path} reference to a Secret of `secrets`,
or the render fails naming where it was written out. */}}
{{- define "dugaa-dispatcher.validateNoInlineCredentials" -}}
{{- $credential := "(?i)(password|passphrase|secret|key\\.pem$|user\\.info)" }}
{{- range $section := list "kafka" "schema_registry" }}
{{- range $key, $value := index $.Values.config $section | default dict }}
{{- if regexMatch $credential $key }}
{{- include "dugaa-dispatcher.requireReference" (list (printf "config.%s.%s" $section $key) $value) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $i, $hook := .Values.hooks }}
{{- $auth := $hook.auth | default dict }}
{{- range $key := list "password" "token" "value" "client_secret" "secret" "secrets" }}
{{- if hasKey $auth $key }}
{{- include "dugaa-dispatcher.requireReference" (list (printf "hooks[%d].auth.%s" $i $key) (get $auth $key)) }}
{{- end }}
{{- end }}
{{- $encryption := $hook.encryption | default dict }}
{{- if hasKey $encryption "key" }}
{{- include "dugaa-dispatcher.requireReference" (list (printf "hooks[%d].encryption.key" $i) $encryption.key) }}
{{- end }}
{{- range $j, $key := $encryption.keys | default list }}
{{- include "dugaa-dispatcher.requireReference" (list (printf "hooks[%d].encryption.keys[%d].key" $i $j) $key.key) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Fails unless the value (a text, or each of a list's) is a ${env:} or ${file:} reference,
whole, as the dispatcher resolves one (config/secrets.py); the message names where, never the
value. */}}
{{- define "dugaa-dispatcher.requireReference" -}}
{{- $where := index . 0 }}
{{- $values := index . 1 }}
{{- if not (kindIs "slice" $values) }}
{{- $values = list $values }}
{{- end }}
{{- range $values }}
{{- if not (regexMatch "^\\$\\{(env|file):[^}]+\\}$" (toString .)) }}
{{- fail (printf "%s is a credential written out: dispatcher.yaml and hooks.yaml are a ConfigMap, stored in plain text; write ${env:NAME} (a variable of secrets.env or secrets.envFrom) or ${file:/path} (a file of secrets.files)" $where) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The timing of the admin container's probe of `kind` (startup, liveness, readiness):
probes.<kind>, each key set in admin.probes.<kind> in its place. */}}
{{- define "dugaa-dispatcher.adminProbe" -}}
{{- $values := .root.Values }}
{{- $own := get ($values.admin.probes | default dict) .kind | default dict }}
{{- toYaml (mergeOverwrite (deepCopy (get $values.probes .kind | default dict)) $own) }}
{{- end }}
