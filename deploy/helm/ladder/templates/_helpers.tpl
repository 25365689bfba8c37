{{/* The four services, in start order of the pipeline. */}}
{{- define "ladder.services" -}}intake router escalation metrics{{- end -}}
{{/* The services KEDA scales on consumer lag of the ticket events (intake is scaled by replicas). */}}
{{- define "ladder.lagScaled" -}}router escalation metrics{{- end -}}

{{- define "ladder.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{/* Labels of everything; `component` is the service (also the scrape's job label). */}}
{{- define "ladder.labels" -}}
app.kubernetes.io/name: ladder
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ladder
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "ladder.selector" -}}
app.kubernetes.io/name: ladder
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ladder.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}{{ printf "%s:%s" .Values.image.repository $tag }}{{- end -}}
{{- end -}}

{{- define "ladder.kafkaSecret" -}}{{ .Values.kafka.existingSecret | default (printf "%s-kafka" (include "ladder.fullname" .)) }}{{- end -}}
{{- define "ladder.databaseSecret" -}}{{ .Values.database.existingSecret | default (printf "%s-database" (include "ladder.fullname" .)) }}{{- end -}}
{{- define "ladder.helpdesksConfigMap" -}}{{ .Values.helpdesks.existingConfigMap | default (ternary (printf "%s-helpdesks" (include "ladder.fullname" .)) "" (not (empty .Values.helpdesks.mappings))) }}{{- end -}}
{{- define "ladder.apiKeysConfigMap" -}}{{ .Values.apiKeys.existingConfigMap | default (printf "%s-api-keys" (include "ladder.fullname" .)) }}{{- end -}}
{{- define "ladder.charterConfigMap" -}}{{ .Values.charter.existingConfigMap | default (printf "%s-charter" (include "ladder.fullname" .)) }}{{- end -}}

{{- define "ladder.sasl" -}}{{ if has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") }}true{{ end }}{{- end -}}
{{- define "ladder.tls" -}}{{ if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}{{- end -}}

{{/* The events topic (shared/topics.py) under the release's prefix. */}}
{{- define "ladder.eventsTopic" -}}{{ printf "%ssupport.ticket-events" .Values.topicPrefix }}{{- end -}}

{{/* A service's consumer group: <S>_CONSUMER_GROUP if set, else the settings' default. */}}
{{- define "ladder.consumerGroup" -}}
{{- $svc := index .root.Values.services .name -}}
{{- index $svc.env (printf "%s_CONSUMER_GROUP" (upper .name)) | default (printf "ladder-%s" .name) -}}
{{- end -}}

{{/* The HTTP server drains for 5 s (shared/service.py serve), the service stops within
     <S>_SHUTDOWN_TIMEOUT_S, preStop waits 5 s: the grace period leaves 10 s more. */}}
{{- define "ladder.grace" -}}{{ add (int .shutdownTimeoutSeconds) 20 }}{{- end -}}

{{/* A service's DATABASE_URL: database.url with the service's own login (no password: that
     is DATABASE_PASSWORD_FILE). */}}
{{- define "ladder.databaseUrl" -}}
{{- $db := .root.Values.database -}}
{{- $url := urlParse ($db.url | required "database.url is required (server, database, TLS; no login)") -}}
{{- if $url.userinfo -}}{{- fail "database.url names the server, not a login: the user is database.users.<service>, the password in the Secret" -}}{{- end -}}
{{- if and $db.caFromSecret (not (contains "sslrootcert=/etc/ladder/database/ca.crt" $db.url)) -}}
{{- fail "database.caFromSecret: database.url needs sslrootcert=/etc/ladder/database/ca.crt (and sslmode=verify-full)" -}}
{{- end -}}
{{- $_ := set $url "userinfo" (index $db.users .name | required (printf "database.users.%s is required" .name)) -}}
{{- urlJoin $url -}}
{{- end -}}
