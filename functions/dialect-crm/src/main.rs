//! The seed 004 dialect on Lambda behind API Gateway (`/api/crm/...`): the peer CRM's routes,
//! UUID ids and `{"error"}` bodies over our operations. It links the whole catalogue, like the
//! other dialect, since its routes call operations of several families (crm, outreach).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = linkcrm_lambda::app(linkcrm_api::catalogue()).await?;
    lambda_http::run(linkcrm_dialect_crm::router(app)).await
}
