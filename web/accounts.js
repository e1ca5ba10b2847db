/*
 * accounts.js - user administration and password change.
 * Part of the Basira web app: shares app.js's helpers through window.Basira.
 */
'use strict';
(function (B) {
  const { state, $, t, api, errorText, showError, show, banner, signOut } = B;

  // ---- users (admin) ------------------------------------------------------

  async function showUsers() {
    show('users');
    let users = [];
    try {
      users = (await api('GET', '/users')).body.items || [];
    } catch (e) {
      return banner(errorText(e));
    }
    const render = () => {
      const tb = $('users-body');
      tb.textContent = '';
      const activeAdmins = users.filter((u) => u.role === 'admin' && !u.disabled).length;
      for (const u of users) {
        const tr = document.createElement('tr');
        const name = document.createElement('td');
        name.textContent = u.username;
        const role = document.createElement('td');
        role.textContent = t('role_' + u.role);
        const st = document.createElement('td');
        st.textContent = u.disabled ? t('user_disabled') : t('user_active');
        const act = document.createElement('td');
        // The last active admin cannot be disabled (the node refuses it too).
        const last = u.role === 'admin' && !u.disabled && activeAdmins <= 1;
        if (u.username !== state.user.username && !last) {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'secondary';
          b.textContent = u.disabled ? t('enable') : t('disable');
          b.setAttribute('aria-label', `${b.textContent} ${u.username}`);
          b.addEventListener('click', async () => {
            try {
              await api('PATCH', `/users/${encodeURIComponent(u.username)}`, { disabled: !u.disabled });
              showUsers();
            } catch (e) { banner(errorText(e)); }
          });
          act.append(b);
        }
        tr.append(name, role, st, act);
        tb.append(tr);
      }
    };
    render();
    state.rerender = render;
  }

  $('user-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError($('user-error'), '');
    const body = { username: $('nu-name').value.trim(), role: $('nu-role').value, password: $('nu-pass').value };
    if (!body.username) return showError($('user-error'), t('need_username'));
    const weak = passwordProblem(body.password, body.username);
    if (weak) return showError($('user-error'), t(weak));
    try {
      await api('POST', '/users', body);
      $('user-form').reset();
      showError($('user-error'), '');
      showUsers();
    } catch (e) {
      if (e.code === 'conflict') return showError($('user-error'), t('user_exists', { name: body.username }));
      showError($('user-error'), e.code === 'invalid_argument' ? `${t('password_refused')} (${e.message})` : errorText(e));
    }
  });

  // The node applies the whole policy (NIST SP 800-63B); this catches the obvious at once.
  function passwordProblem(pw, username) {
    if ([...pw].length < 8) return 'need_password';
    if (pw.toLowerCase() === (username || '').toLowerCase()) return 'password_is_username';
    if (['password', 'motdepasse', '12345678', '123456789', 'azertyuiop', 'qwertyuiop'].includes(pw.toLowerCase()))
      return 'password_common';
    return null;
  }

  // ---- password change ------------------------------------------------------

  function showPassword() {
    show('password');
    $('password-form').reset();
    showError($('pw-error'), '');
  }

  $('password-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError($('pw-error'), '');
    const cur = $('pw-current').value, nw = $('pw-new').value;
    if (nw !== $('pw-again').value) return showError($('pw-error'), t('password_mismatch'));
    const weak = passwordProblem(nw, state.user.username);
    if (weak) return showError($('pw-error'), t(weak));
    try {
      await api('POST', '/session/password', { current: cur, new: nw });
      $('password-form').reset();
      // The node ends every session of the account: sign in again with the new one.
      await signOut('password_changed');
    } catch (e) {
      showError($('pw-error'), e.code === 'unauthenticated' ? t('password_current_wrong')
        : e.code === 'invalid_argument' ? `${t('password_refused')} (${e.message})` : errorText(e));
    }
  });

  B.screens.users = showUsers;
  B.screens.password = showPassword;
})(window.Basira);
