// Loaded in the page <head>. When the server answers 401 (the sign-in session expired or was
// ended elsewhere), go to the sign-in page instead of leaving a silent, broken app.
(() => {
  const fetch0 = window.fetch.bind(window);
  let leaving = false;
  window.fetch = async (...args) => {
    const response = await fetch0(...args);
    if (response.status === 401 && !leaving) {
      const target = args[0];
      const url = String((target && target.url) || target || "");
      if (url.includes("/gradio_api/") || url.endsWith("/config")) {
        leaving = true;
        window.location.assign("/login?expired=1");
      }
    }
    return response;
  };
})();
// Signing out is a POST (a GET could be sent by any page's link or image): the header's
// "Sign out" link posts instead of following its href (/logout, a page with a button).
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element && event.target.closest('a[href="/logout"]');
  if (!link) return;
  event.preventDefault();
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/logout";
  document.body.appendChild(form);
  form.submit();
});
