// Render /openapi.json with the Swagger UI files the gateway serves itself (no CDN, no
// validator badge: validatorUrl null keeps every request on this host).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#docs",
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
});
