{{/* The objects' name: the release name when it already says image-clone (the usual
`helm install image-clone`), else "<release>-image-clone". Kept to 63 characters. */}}
{{- define "image-clone.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The label the Kustomize manifests put on everything, and the ones Helm's conventions add. */}}
{{- define "image-clone.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "image-clone.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The container image: repository@digest when a digest is given, else repository:tag
(the tag defaults to the chart's appVersion). */}}
{{- define "image-clone.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount a binding names. */}}
{{- define "image-clone.subject" -}}
- kind: ServiceAccount
  name: {{ include "image-clone.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* What image-clone does to workloads (the custom kinds it knows included) and their Events: the rules of manifests/base/clusterrole.yaml,
as the ClusterRole (default) or, with rbac.namespaced, as a Role in the release namespace. */}}
{{- define "image-clone.workloadRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  verbs: ["list"]
- apiGroups: ["batch"]
  resources: ["cronjobs", "jobs"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["replicationcontrollers", "pods"]
  verbs: ["list"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  verbs: ["patch"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["replicationcontrollers", "pods"]
  verbs: ["patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["patch"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["list"]
- apiGroups: ["apps.kruise.io"]
  resources: ["clonesets", "statefulsets", "daemonsets"]
  verbs: ["list"]
- apiGroups: ["serving.knative.dev"]
  resources: ["services"]
  verbs: ["list"]
- apiGroups: ["keda.sh"]
  resources: ["scaledjobs"]
  verbs: ["list"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["patch"]
- apiGroups: ["apps.kruise.io"]
  resources: ["clonesets", "statefulsets", "daemonsets"]
  verbs: ["patch"]
- apiGroups: ["serving.knative.dev"]
  resources: ["services"]
  verbs: ["patch"]
- apiGroups: ["keda.sh"]
  resources: ["scaledjobs"]
  verbs: ["patch"]
{{- end -}}
