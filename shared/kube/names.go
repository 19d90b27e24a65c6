package kube

import (
	"fmt"
	"strconv"
)

// Labels and annotations, as the original IM names them.
const (
	LabelJobID         = "ucloud.dk/jobId"
	LabelRank          = "ucloud.dk/rank"
	LabelWorkspaceID   = "ucloud.dk/workspaceId"
	AnnotationIAppETag = "ucloud.dk/iapp-etag"
	AnnotationIAppName = "ucloud.dk/iapp-name"
	AnnotationExpiry   = "ucloud.dk/expiry"
	// AnnotationReplicas is the job's number of ranks: the monitor folds a job's state only once it saw them all.
	AnnotationReplicas = "ucloud.dk/replicas"
	// AnnotationTimeAllocation is the job's time allocation in milliseconds; extend raises it.
	AnnotationTimeAllocation = "ucloud.dk/time-allocation-ms"
	// ContainerName is the job's main container.
	ContainerName = "user-job"
)

// PodName is the pod of one rank of a job: j-<jobId>-job-<rank>.
func PodName(jobID string, rank int) string { return fmt.Sprintf("j-%s-job-%d", jobID, rank) }

// ServiceName is the job's headless service: j-<jobId>.
func ServiceName(jobID string) string { return "j-" + jobID }

// PolicyName is the job's network policy: policy-<jobId>.
func PolicyName(jobID string) string { return "policy-" + jobID }

// JobLabels are the labels of every object of a job's rank.
func JobLabels(jobID string, rank int, project string) map[string]string {
	l := map[string]string{LabelJobID: jobID, LabelRank: strconv.Itoa(rank)}
	if project != "" {
		l[LabelWorkspaceID] = project
	}
	return l
}
