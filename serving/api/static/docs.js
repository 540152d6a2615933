// The API page: Swagger UI (the copy BentoML ships, served by this service) on the service's own document.
// validatorUrl null: Swagger UI would otherwise ask validator.swagger.io to check every document it shows.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "./docs.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
