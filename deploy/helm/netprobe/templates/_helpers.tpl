{{/* The objects' name: "netprobe" for a release named netprobe. */}}
{{- define "netprobe.fullname" -}}
{{- if contains "netprobe" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-netprobe" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "netprobe.labels" -}}
app.kubernetes.io/name: netprobe
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: netprobe
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "netprobe.agentSelector" -}}
app.kubernetes.io/name: netprobe
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "netprobe.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The pod's security settings, shared by the agent and the test pod. */}}
{{- define "netprobe.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "netprobe.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The node resolver reads the node's files (hostPath) unless it names the VNet's DNS servers. */}}
{{- define "netprobe.nodeResolverMounts" -}}
{{- if and .Values.nodeResolver.enabled (not .Values.nodeResolver.servers) }}true{{ end -}}
{{- end -}}

{{/* Volume mounts: the config, and the node's resolv.conf files when the node resolver mounts them. */}}
{{- define "netprobe.volumeMounts" -}}
- name: config
  mountPath: /etc/netprobe
  readOnly: true
{{- if include "netprobe.nodeResolverMounts" . }}
- name: node-resolved
  mountPath: /host/run/systemd/resolve
  readOnly: true
- name: node-resolv-conf
  mountPath: /host/etc/resolv.conf
  readOnly: true
{{- end }}
{{- if .Values.serviceTags.configMap }}
- name: service-tags
  mountPath: /etc/netprobe-service-tags
  readOnly: true
{{- end }}
{{- end -}}

{{- define "netprobe.volumes" -}}
- name: config
  configMap:
    name: {{ include "netprobe.fullname" . }}-config
{{- if include "netprobe.nodeResolverMounts" . }}
# hostPath types that check and never create anything on the node.
- name: node-resolved
  hostPath:
    path: /run/systemd/resolve
    type: Directory
- name: node-resolv-conf
  hostPath:
    path: /etc/resolv.conf
    type: File
{{- end }}
{{- if .Values.serviceTags.configMap }}
- name: service-tags
  configMap:
    name: {{ .Values.serviceTags.configMap }}
{{- end }}
{{- end -}}

{{/* The configuration, with the `node` resolver added when the node resolver is on. */}}
{{- define "netprobe.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- /* The keys that make targets (config::section_keys; tests/helm.rs keeps them equal). */ -}}
{{- $targetKeys := list "workspace" "storage_accounts" "key_vaults" "container_registries" "targets" "aml_extension" "api_server_fqdn" -}}
{{- $hasTarget := false -}}
{{- range $targetKeys -}}{{- if hasKey $cfg . -}}{{- $hasTarget = true -}}{{- end -}}{{- end -}}
{{- if not $hasTarget -}}
{{- fail (printf "config: nothing to probe: set your workspace and its resources in the values' `config` (%s; docs/configuration.md). The chart probes nothing by default: it has no placeholder resource." (join ", " $targetKeys)) -}}
{{- end -}}
{{- if .Values.nodeResolver.enabled -}}
{{- $resolvers := $cfg.resolvers | default (list (dict "name" "system")) -}}
{{- $has := false -}}
{{- range $resolvers -}}{{- if eq .name "node" -}}{{- $has = true -}}{{- end -}}{{- end -}}
{{- if not $has -}}
{{- $node := dict "name" "node" "resolv_conf" "/host/run/systemd/resolve/resolv.conf" "resolv_conf_fallback" "/host/etc/resolv.conf" -}}
{{- with .Values.nodeResolver.servers -}}
{{- $node = dict "name" "node" "servers" . -}}
{{- end -}}
{{- $_ := set $cfg "resolvers" (append $resolvers $node) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.serviceTags.configMap (not (hasKey $cfg "service_tags_file")) -}}
{{- $_ := set $cfg "service_tags_file" (printf "/etc/netprobe-service-tags/%s" .Values.serviceTags.key) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
