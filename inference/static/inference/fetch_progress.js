// The Models page reloads itself while fetches run, so that their progress bars move.
document.addEventListener("DOMContentLoaded", () => {
  if (document.querySelector("#result_list progress")) {
    setTimeout(() => window.location.reload(), 3000);
  }
});
