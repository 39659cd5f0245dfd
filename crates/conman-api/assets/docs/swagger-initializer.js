// Conman's Swagger UI configuration, served as /api/docs/swagger-initializer.js
// (a file, not an inline script: the page's Content-Security-Policy allows
// scripts from the server itself only). The document is the server's own
// /api/openapi.json; nothing is loaded from elsewhere (no validator badge,
// no top bar that loads other documents).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: "none",
    displayRequestDuration: true,
    persistAuthorization: false,
  });
});
