{{/* Chart name, truncated to the 63 characters Kubernetes allows in names and labels. */}}
{{- define "cdp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "cdp.fullname" -}}
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

{{- define "cdp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cdp.labels" -}}
helm.sh/chart: {{ include "cdp.chart" . }}
app.kubernetes.io/name: {{ include "cdp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cdp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cdp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
An image reference "<repository>:<tag>" from {repository, tag}. Refuses an empty repository, an
empty tag and `latest`: every image this chart deploys is pinned. Call with (list <image> "<values path>").
*/}}
{{- define "cdp.image" -}}
{{- $image := index . 0 }}
{{- $path := index . 1 }}
{{- $repository := required (printf "%s.repository is required" $path) $image.repository }}
{{- $tag := toString (required (printf "%s.tag is required: pin an immutable tag" $path) $image.tag) }}
{{- if eq (lower $tag) "latest" }}
{{- fail (printf "%s.tag must be pinned, not `latest`" $path) }}
{{- end }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* The code-location image: the one place it is configured. */}}
{{- define "cdp.codeLocation.image" -}}
{{- include "cdp.image" (list .Values.image "image") }}
{{- end }}

{{- define "cdp.codeLocation.fullname" -}}
{{- printf "%s-code" (include "cdp.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cdp.codeLocation.serviceAccountName" -}}
{{- if .Values.codeLocation.serviceAccount.create }}
{{- default (include "cdp.codeLocation.fullname" .) .Values.codeLocation.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.codeLocation.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cdp.configMapName" -}}
{{- printf "%s-config" (include "cdp.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cdp.spark.fullname" -}}
{{- printf "%s-spark-connect" (include "cdp.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cdp.spark.serviceAccountName" -}}
{{- if .Values.sparkConnect.serviceAccount.create }}
{{- default (printf "%s-spark" (include "cdp.fullname" .) | trunc 63 | trimSuffix "-") .Values.sparkConnect.serviceAccount.name }}
{{- else }}
{{- required "sparkConnect.serviceAccount.name is required when sparkConnect.serviceAccount.create is false" .Values.sparkConnect.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cdp.spark.image" -}}
{{- include "cdp.image" (list .Values.sparkConnect.image "sparkConnect.image") }}
{{- end }}

{{/* SPARK_REMOTE: the in-cluster Spark Connect Service, or the external endpoint from values. */}}
{{- define "cdp.sparkRemote" -}}
{{- if .Values.sparkConnect.enabled }}
{{- printf "sc://%s.%s.svc:%v" (include "cdp.spark.fullname" .) .Release.Namespace .Values.sparkConnect.port }}
{{- else }}
{{- required "platform.sparkRemote (sc://host:15002) is required when sparkConnect.enabled is false" .Values.platform.sparkRemote }}
{{- end }}
{{- end }}

{{/* The Postgres password Secret: the same one the Dagster chart reads (key postgresql-password). */}}
{{- define "cdp.postgresqlSecretName" -}}
{{- required "global.postgresqlSecretName (an existing Secret with key postgresql-password) is required" (.Values.global).postgresqlSecretName }}
{{- end }}

{{/* Secret-backed env of the code server and the run pods: references only, never values. */}}
{{- define "cdp.piiKeyEnv" -}}
- name: PLATFORM_PII_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.piiKey.name (an existing Secret) is required" .Values.secrets.piiKey.name }}
      key: {{ required "secrets.piiKey.key is required" .Values.secrets.piiKey.key }}
{{- end }}

{{/*
The container context the code server hands to the K8sRunLauncher (DAGSTER_CONTAINER_CONTEXT): run
pods get the same ConfigMap, the same Secret references, labels, service account, security
context and their own resources. (The K8sRunLauncher itself adds DAGSTER_PG_PASSWORD from
global.postgresqlSecretName.)
*/}}
{{- define "cdp.codeLocation.containerContext" -}}
{{- $k8s := dict
  "namespace" .Release.Namespace
  "service_account_name" (include "cdp.codeLocation.serviceAccountName" .)
  "env_config_maps" (list (include "cdp.configMapName" .))
  "env" (concat (include "cdp.piiKeyEnv" . | fromYamlArray) .Values.codeLocation.extraEnv)
  "resources" .Values.codeLocation.runResources
  "security_context" .Values.codeLocation.securityContext
  "run_k8s_config" (dict "pod_spec_config" (dict "security_context" .Values.codeLocation.podSecurityContext "automount_service_account_token" false))
}}
{{- if .Values.secrets.lakeCredentials.name }}
{{- $_ := set $k8s "env_secrets" (list .Values.secrets.lakeCredentials.name) }}
{{- end }}
{{- with .Values.imagePullSecrets }}
{{- $_ := set $k8s "image_pull_secrets" . }}
{{- end }}
{{- if .Values.codeLocation.podLabels }}
{{- $_ := set $k8s "labels" .Values.codeLocation.podLabels }}
{{- end }}
{{- dict "k8s" $k8s | toJson }}
{{- end }}
