//! `carbon_route`: where a workload should run, over the embedded region dataset.

use meshos_carbon::{CarbonError, RouteDecision, RouteRequest};
use meshos_types::Principal;

use crate::mesh::{Mesh, MeshError, invalid};
use crate::policy_check::controls_in_force;

impl Mesh {
    /// Routes a model call, leaving out the regions and providers the tenant's open incidents
    /// avoid (`region_avoid` controls set by the healer).
    pub async fn carbon_route(
        &self,
        principal: &Principal,
        req: RouteRequest,
    ) -> Result<RouteDecision, MeshError> {
        let avoid: Vec<String> = controls_in_force(
            &self.store.active_controls(Some(&principal.tenant)).await?,
            rand::random::<f64>(),
        )
        .iter()
        .filter_map(|c| c.avoided_region().map(str::to_string))
        .collect();
        meshos_carbon::route_avoiding(&self.dataset, &req, &avoid).map_err(|e| match e {
            CarbonError::UnknownModel { .. } => invalid("model", e.to_string()),
            CarbonError::UnknownResidency { .. } => invalid("residency", e.to_string()),
            CarbonError::InvalidRequest { ref field, .. } => invalid(field.clone(), e.to_string()),
            CarbonError::NoFeasibleOption { .. } => MeshError::NotFound(e.to_string()),
            CarbonError::InvalidDataset(_) => MeshError::Internal(e.to_string()),
        })
    }
}
